"""Identity verification (KYC): encrypted identity documents, admin review, the payout gate."""
