"""Staff: accounts, sign-in, tokens, the directory, branches and the audit trail."""
