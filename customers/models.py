"""Customers, contacts, decision-chain roles and follow-ups (Interaction): the customer 360."""
