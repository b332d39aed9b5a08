// field app: filled in below
