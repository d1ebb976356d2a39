"""Privacy as its own tested package: speech guard, message-content guard, log scrubbing."""
