DROP INDEX webhook_deliveries_tests;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, held, next_attempt_at);
DROP INDEX webhook_deliveries_queue;
