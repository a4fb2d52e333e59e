//! Per-user turns on one instance: at most [`PER_USER`] requests of one user run at once,
//! whichever routes they came by (a sign-in start, a step of a sign-in, self-service, an
//! admin action on the user), so a user whose row is held elsewhere ties up at most that
//! many pooled connections while the rest of that user's requests wait without one.

use super::keyed::{KeyedTurn, KeyedTurns};

/// Requests of one key that may run at once on an instance. Each may hold a pooled
/// connection for up to `MFA_LOCK_TIMEOUT_MS` when the user's row is stuck.
pub const PER_USER: usize = 2;

/// Whose turn a request waits for: always one user of one tenant, however the request
/// names them (see [`Whose`]), so every route that waits on a user's row shares the
/// user's [`PER_USER`] turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GateKey([u8; 16]);

impl GateKey {
    /// One user of one tenant, by their turn key (`crypto::hashing::HashKey::user_turn`).
    pub fn user(turn_key: [u8; 16]) -> Self {
        Self(turn_key)
    }
}

/// How a request names the user whose row it will wait on, before the user is resolved
/// into a [`GateKey`] (`services::turns`), the cheapest way its route allows: in its path or
/// a sign-in start's body, taken only once the request's credential checks out for that
/// tenant (so a caller without one cannot queue in a user's turns); in its access token (a
/// signature check); or in its sign-in's mfa token, which carries its user's turn key under
/// a keyed tag and an expiry (`crypto::tokens::new_mfa_token`; no read), so only a token the
/// service issued, until it expires, queues in a user's turns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whose {
    Named {
        tenant_id: String,
        user_id: String,
        credential: Option<String>,
    },
    AccessToken(String),
    MfaToken(String),
}

/// Per-key turns: [`PER_USER`] of each key at once.
pub struct UserGate {
    turns: KeyedTurns<GateKey>,
}

impl Default for UserGate {
    fn default() -> Self {
        Self {
            turns: KeyedTurns::new(PER_USER),
        }
    }
}

/// A turn; frees the key's entry when the last holder leaves.
pub type Turn = KeyedTurn<GateKey>;

impl UserGate {
    /// Waits for a turn of `key`, holding nothing else meanwhile (take it before the pool's
    /// connection). `None` (no gating) only if the map is poisoned. Turns do not nest: a
    /// request that holds a turn must not wait for another of the same key, or two such
    /// requests wait for each other.
    pub async fn enter(&self, key: GateKey) -> Option<Turn> {
        self.turns.enter(key).await
    }

    /// Keys with a holder or a waiter (for tests).
    pub fn len(&self) -> usize {
        self.turns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_user_gets_at_most_per_user_turns_and_the_entry_goes_with_the_last() {
        let gate = UserGate::default();
        let u = || GateKey::user([1; 16]);
        let a = gate.enter(u()).await.unwrap();
        let b = gate.enter(u()).await.unwrap();
        let third = tokio::time::timeout(Duration::from_millis(50), gate.enter(u())).await;
        assert!(third.is_err(), "a third turn waits");
        let other = gate.enter(GateKey::user([2; 16])).await.unwrap();
        drop(a);
        let c = gate.enter(u()).await.unwrap();
        assert_eq!(gate.len(), 2);
        drop((b, c, other));
        assert!(gate.is_empty());
    }
}
