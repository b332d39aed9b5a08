"""Privacy (GDPR): export everything held about a contact, erase or anonymise them, and
keep the log of consent given and withdrawn."""
