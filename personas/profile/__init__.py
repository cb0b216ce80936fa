"""What a persona is to people: profiles, traits and rules, names, actions, stable identities.

``build_profiles`` turns labels and features into ``profiles.json`` (validated against
``profiles.schema.json`` by :mod:`personas.profile.validate`).
"""

from personas.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {"build_profiles": "profiles", "validate_profiles": "validate"},
    submodules=("explain", "identity", "naming", "playbook", "profiles", "validate"),
)
