"""The email templates and brand file of nieuwsbrief (package data, edited as plain files)."""
