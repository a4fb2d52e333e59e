DROP TABLE audit_events;
DROP TABLE service_keys;
DROP TABLE logins;
DROP TABLE recovery_codes;
DROP TABLE totp_factors;
DROP TABLE users;
DROP TABLE tenants;
