"""The pages of the site, one module per audience: readers, the archive, staff sign-in,
editors (a package of its own), ops and the audit log."""
