"""Helpdesk tickets, service review cards, quality alerts and service metrics."""
