"""Buyer personas from customer purchase and behaviour data."""
