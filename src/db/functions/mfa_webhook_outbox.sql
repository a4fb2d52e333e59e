-- The webhook outbox (API.md §14): every audit event inserted (db::audit) enqueues one pending
-- delivery per active webhook of its tenant subscribed to its type, in the same statement and
-- so in the same transaction: a delivery commits with the event it carries, or neither does.
-- A tenant without a subscribed webhook costs one probe of the webhooks table and no INSERT.
-- The webhook worker (db::webhooks) claims the rows.
--
-- History: 2026-11-30-000003_webhooks, the probe first since
-- 2026-12-01-000001_cheaper_sign_in_writes.

CREATE OR REPLACE FUNCTION public.mfa_webhook_outbox()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    IF EXISTS (SELECT FROM webhooks w
                WHERE w.tenant_id = NEW.tenant_id AND w.status = 'active'
                  AND (w.event_types = '{*}' OR NEW.type = ANY (w.event_types))) THEN
        INSERT INTO webhook_deliveries (tenant_id, delivery_id, webhook_id, event_id, event_type,
                                        state, next_attempt_at, created_at)
        SELECT NEW.tenant_id, gen_random_uuid(), w.webhook_id, NEW.id, NEW.type,
               'pending', NEW.at, NEW.at
          FROM webhooks w
         WHERE w.tenant_id = NEW.tenant_id AND w.status = 'active'
           AND (w.event_types = '{*}' OR NEW.type = ANY (w.event_types));
    END IF;
    RETURN NULL;
END $function$;

CREATE TRIGGER audit_events_webhook_outbox AFTER INSERT ON public.audit_events FOR EACH ROW EXECUTE FUNCTION mfa_webhook_outbox();
