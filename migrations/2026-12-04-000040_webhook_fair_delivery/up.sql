-- Fair webhook delivery and its limits (docs/API.md §20).

-- The worker's claim takes webhooks in turn: it walks the webhooks that have pending,
-- unheld deliveries in (tenant_id, webhook_id) order, one index probe per webhook, and
-- takes each one's oldest due deliveries from the same index in next_attempt_at order.
-- The queue depth counts from its leading column. It replaces webhook_deliveries_due
-- (state, held, next_attempt_at), which served the claim in global due order.
CREATE INDEX webhook_deliveries_queue
    ON webhook_deliveries (state, held, tenant_id, webhook_id, next_attempt_at);
DROP INDEX webhook_deliveries_due;

-- `POST …/test` at most once per 10 s per webhook, on every instance: the window starts at
-- the webhook's newest test delivery (event_id NULL), found in one probe here. Partial: other
-- deliveries only evaluate the predicate.
CREATE INDEX webhook_deliveries_tests
    ON webhook_deliveries (tenant_id, webhook_id, created_at DESC) WHERE event_id IS NULL;
