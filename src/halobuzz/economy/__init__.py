"""The virtual economy: the double-entry coin ledger, wallets, coin packages and gifts."""
