//! The reclamation seam of [`crate::AtomicKey`]: crossbeam-epoch in normal builds, and
//! under `--cfg floe_loom` a small collector of the same shape whose every step loom sees.
//!
//! crossbeam-epoch itself can run on loom (`--cfg crossbeam_loom`), but its pinning,
//! registration and garbage queues multiply the interleavings so much that a model of two
//! threads with one preemption takes 43,000 executions and three threads do not finish in
//! minutes (`docs/memtable.md`). The model collector keeps the contract that `AtomicKey`
//! relies on — a retired object is freed only after every guard that could have loaded it
//! is dropped — and frees as early as that contract allows (when no guard is active), so
//! the models still catch a read of a reclaimed key.

#[cfg(not(floe_loom))]
pub(crate) use crossbeam_epoch::{Atomic, Guard, Owned, Shared, pin, unprotected};

#[cfg(floe_loom)]
pub(crate) use model::{Atomic, Guard, Owned, Shared, pin, unprotected};

#[cfg(floe_loom)]
mod model {
    use std::marker::PhantomData;

    use loom::sync::Mutex;
    use loom::sync::atomic::{AtomicPtr, Ordering};

    /// A retired object: its address and the function that frees it.
    struct Retired {
        address: usize,
        free: unsafe fn(usize),
    }

    #[derive(Default)]
    struct State {
        /// Guards alive now.
        active: usize,
        /// Objects retired and not yet freed.
        retired: Vec<Retired>,
    }

    impl Drop for State {
        fn drop(&mut self) {
            for retired in self.retired.drain(..) {
                // SAFETY: the model is over, no guard is left.
                unsafe { (retired.free)(retired.address) };
            }
        }
    }

    loom::lazy_static! {
        static ref STATE: Mutex<State> = Mutex::new(State::default());
    }

    unsafe fn free_box<T>(address: usize) {
        // SAFETY: `address` came from `Box::into_raw` of a `Box<T>` (see `defer_destroy`).
        drop(unsafe { Box::from_raw(address as *mut T) });
    }

    /// A pinned section: objects loaded under it stay allocated until it is dropped.
    pub(crate) struct Guard {
        counted: bool,
    }

    /// Pins the current thread.
    pub(crate) fn pin() -> Guard {
        STATE.lock().unwrap().active += 1;
        Guard { counted: true }
    }

    /// A guard for code that has exclusive access (a destructor).
    ///
    /// # Safety
    /// As crossbeam-epoch's: only where no other thread can reach the objects.
    pub(crate) unsafe fn unprotected() -> &'static Guard {
        static UNPROTECTED: Guard = Guard { counted: false };
        &UNPROTECTED
    }

    impl Guard {
        /// Frees `shared` once every active guard is dropped.
        ///
        /// # Safety
        /// `shared` must be unlinked, and retired once.
        pub(crate) unsafe fn defer_destroy<T>(&self, shared: Shared<'_, T>) {
            STATE.lock().unwrap().retired.push(Retired {
                address: shared.ptr as usize,
                free: free_box::<T>,
            });
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            if !self.counted {
                return;
            }
            let mut state = STATE.lock().unwrap();
            state.active -= 1;
            if state.active == 0 {
                let retired = std::mem::take(&mut state.retired);
                drop(state);
                for retired in retired {
                    // SAFETY: no guard is active, so no thread holds a loaded pointer.
                    unsafe { (retired.free)(retired.address) };
                }
            }
        }
    }

    /// An owned object not yet published.
    pub(crate) struct Owned<T>(Box<T>);

    impl<T> Owned<T> {
        pub(crate) fn new(value: T) -> Owned<T> {
            Owned(Box::new(value))
        }
    }

    /// A pointer loaded under a guard.
    pub(crate) struct Shared<'g, T> {
        ptr: *mut T,
        guard: PhantomData<&'g T>,
    }

    impl<T> Clone for Shared<'_, T> {
        fn clone(&self) -> Self {
            *self
        }
    }

    impl<T> Copy for Shared<'_, T> {}

    impl<'g, T> Shared<'g, T> {
        fn from_raw(ptr: *mut T) -> Self {
            Shared {
                ptr,
                guard: PhantomData,
            }
        }

        pub(crate) fn is_null(&self) -> bool {
            self.ptr.is_null()
        }

        /// # Safety
        /// The object must not have been freed (the guard protects it).
        pub(crate) unsafe fn as_ref(&self) -> Option<&'g T> {
            // SAFETY: the caller's contract.
            unsafe { self.ptr.as_ref() }
        }

        /// # Safety
        /// The caller must have exclusive access to the object.
        pub(crate) unsafe fn into_owned(self) -> Owned<T> {
            // SAFETY: the caller's contract; the pointer came from `Box::into_raw`.
            Owned(unsafe { Box::from_raw(self.ptr) })
        }
    }

    /// The failure of a compare-and-swap: the value found and the rejected new value.
    pub(crate) struct CompareExchangeError<'g, T> {
        pub(crate) current: Shared<'g, T>,
        pub(crate) new: Owned<T>,
    }

    /// An atomic pointer to a heap object.
    pub(crate) struct Atomic<T> {
        ptr: AtomicPtr<T>,
    }

    // SAFETY: as crossbeam-epoch's `Atomic<T>`: the object is shared between threads.
    unsafe impl<T: Send + Sync> Send for Atomic<T> {}
    // SAFETY: as above.
    unsafe impl<T: Send + Sync> Sync for Atomic<T> {}

    impl<T> Atomic<T> {
        pub(crate) fn null() -> Atomic<T> {
            Atomic {
                ptr: AtomicPtr::new(std::ptr::null_mut()),
            }
        }

        pub(crate) fn new(value: T) -> Atomic<T> {
            Atomic {
                ptr: AtomicPtr::new(Box::into_raw(Box::new(value))),
            }
        }

        pub(crate) fn load<'g>(&self, order: Ordering, _guard: &'g Guard) -> Shared<'g, T> {
            Shared::from_raw(self.ptr.load(order))
        }

        pub(crate) fn compare_exchange<'g>(
            &self,
            current: Shared<'_, T>,
            new: Owned<T>,
            success: Ordering,
            failure: Ordering,
            _guard: &'g Guard,
        ) -> Result<Shared<'g, T>, CompareExchangeError<'g, T>> {
            let raw = Box::into_raw(new.0);
            match self
                .ptr
                .compare_exchange(current.ptr, raw, success, failure)
            {
                Ok(_) => Ok(Shared::from_raw(raw)),
                Err(found) => Err(CompareExchangeError {
                    current: Shared::from_raw(found),
                    // SAFETY: the CAS failed, so `raw` was never published.
                    new: Owned(unsafe { Box::from_raw(raw) }),
                }),
            }
        }
    }
}
