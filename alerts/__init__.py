"""Incidents, routing, delivery channels, the outbox and the complaint queue (arriving with the incidents issue)."""
