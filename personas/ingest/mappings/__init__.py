"""Source mappings shipped with personas: copy one as the start of your own."""
