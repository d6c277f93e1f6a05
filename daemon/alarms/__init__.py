"""Where an alarm is decided (rules), lives (lifecycle), escalates and is sent (outbox, dispatcher)."""
