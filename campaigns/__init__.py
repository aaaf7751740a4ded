"""What is sent: snippets, weekly assembly, rendering, the delivery ledger and tracking."""
