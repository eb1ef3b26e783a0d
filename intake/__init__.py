"""Mail-in intake: customers' mail with photos or PDFs taken in as scans under the claim or policy number
of its subject (``mailbox.py`` receives, ``letter.py`` reads a message, ``contacts.py`` knows customers'
addresses, ``take.py`` makes the scan and the reply)."""
