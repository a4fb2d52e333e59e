//! Turns per key on one instance: a semaphore per key while someone holds or waits for it,
//! dropped with the last holder so the map holds only the keys in use. The user gate
//! ([`super::UserGate`]) and the webhook resolver's one lookup per host both wait on these.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

type Slots<K> = Arc<Mutex<HashMap<K, Arc<Semaphore>>>>;

/// At most `per_key` turns of each key at once.
pub struct KeyedTurns<K> {
    per_key: usize,
    slots: Slots<K>,
}

/// A turn; frees the key's entry when the last holder leaves.
pub struct KeyedTurn<K: Eq + Hash> {
    slots: Slots<K>,
    key: K,
    _permit: OwnedSemaphorePermit,
}

impl<K: Eq + Hash + Clone> KeyedTurns<K> {
    pub fn new(per_key: usize) -> Self {
        Self {
            per_key,
            slots: Slots::default(),
        }
    }

    /// Waits for a turn of `key`. `None` only if the map is poisoned.
    pub async fn enter(&self, key: K) -> Option<KeyedTurn<K>> {
        let sem = {
            let mut slots = self.slots.lock().ok()?;
            slots
                .entry(key.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_key)))
                .clone()
        };
        let permit = sem.acquire_owned().await.ok()?;
        Some(KeyedTurn {
            slots: self.slots.clone(),
            key,
            _permit: permit,
        })
    }

    /// Keys with a holder or a waiter (for tests).
    pub fn len(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Eq + Hash> Drop for KeyedTurn<K> {
    fn drop(&mut self) {
        if let Ok(mut slots) = self.slots.lock() {
            // The map's reference and this turn's permit: nobody else holds or waits.
            if slots
                .get(&self.key)
                .is_some_and(|s| Arc::strong_count(s) <= 2)
            {
                slots.remove(&self.key);
            }
        }
    }
}
