"""What more than one adapter needs: edit-based streaming, text splitting, a TTL cache."""
