"""The returns mailbox: DSNs, ARF complaints, mailed unsubscribes and replies -> suppression.

sources (IMAP, Maildir, mbox) -> classify (one message -> what it reports) -> match (VERP token,
quoted Message-ID, or an address this home mailed) -> act (suppression list, soft-bounce score)
-> mark processed. imap-tools and flufl.bounce are used here and nowhere else.
"""
