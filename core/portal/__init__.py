"""The customer self-service portal: portal identities (entirely separate from staff users),
their sessions and sign-in links, and the pages customers use under ``/portal/``."""
