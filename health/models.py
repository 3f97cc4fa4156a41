"""Models of this stage; see docs/ for what lands here."""
