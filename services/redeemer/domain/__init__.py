"""The redeemer's rules, pure: no database, no HTTP, no clock of their own. Application code
(../application/) reads what they need, asks them, and writes what they decide."""
