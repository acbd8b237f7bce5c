"""Privacy requests: data export and account deletion."""
