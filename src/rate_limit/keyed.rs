//! Turns per key on one instance: a semaphore per key while someone holds or waits for it,
//! dropped with the last holder or waiter so the map holds only the keys in use. The user gate
//! ([`super::UserGate`]) and the webhook resolver's one lookup per host both wait on these.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

type Slots<K> = Arc<Mutex<HashMap<K, Arc<Semaphore>>>>;

/// At most `per_key` turns of each key at once.
pub struct KeyedTurns<K> {
    per_key: usize,
    slots: Slots<K>,
}

/// A holder's or a waiter's share of a key's entry: the last one to go removes the entry,
/// whether it held a turn or gave up waiting (a request cancelled at its deadline).
struct Share<K: Eq + Hash> {
    slots: Slots<K>,
    key: K,
    sem: Arc<Semaphore>,
}

impl<K: Eq + Hash> Drop for Share<K> {
    fn drop(&mut self) {
        if let Ok(mut slots) = self.slots.lock() {
            // The map's reference and this share's: nobody else holds or waits.
            if slots
                .get(&self.key)
                .is_some_and(|s| Arc::ptr_eq(s, &self.sem) && Arc::strong_count(&self.sem) <= 2)
            {
                slots.remove(&self.key);
            }
        }
    }
}

/// A turn; gives its permit back, then its share of the key's entry, when dropped.
pub struct KeyedTurn<K: Eq + Hash> {
    share: Share<K>,
}

impl<K: Eq + Hash> Drop for KeyedTurn<K> {
    fn drop(&mut self) {
        // The permit was forgotten when taken (`enter`); the share goes after this.
        self.share.sem.add_permits(1);
    }
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
        let share = Share {
            slots: self.slots.clone(),
            key,
            sem,
        };
        // Borrowed from the share, so a cancelled wait ends before the share drops.
        share.sem.acquire().await.ok()?.forget();
        Some(KeyedTurn { share })
    }

    /// Keys with a holder or a waiter (for tests).
    pub fn len(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_waiter_that_gives_up_after_the_holder_left_takes_the_entry_with_it() {
        let turns = KeyedTurns::new(1);
        let held = turns.enter(7).await.unwrap();
        let mut waiting = Box::pin(turns.enter(7));
        let wait = tokio::time::timeout(Duration::from_millis(20), &mut waiting).await;
        assert!(wait.is_err(), "the second turn waits");
        drop(held);
        // Cancelled before it was polled again (a request at its deadline).
        drop(waiting);
        assert!(turns.is_empty(), "the key's entry outlived everyone");
    }
}
