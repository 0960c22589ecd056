"""Money: budgets and reservations, metering, prices, the usage report, quota admin."""
