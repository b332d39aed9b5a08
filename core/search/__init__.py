"""Global search: one box that finds customers (and whatever plugins register) by name,
email, phone or account, forgiving typos, and never beyond what the searcher may see."""
