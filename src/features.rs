//! Features beyond sessions and the Devin permission each needs. An endpoint that answers 403
//! turns its feature alone off until the next config reload (the operator granted the
//! permission: [`try_again`]) or restart: one error log naming the missing permission, the
//! gauge `devin_notify_feature_enabled{feature}` at 0. Session polling never depends on them.

use std::sync::atomic::{AtomicU8, Ordering};

/// A feature that reads an endpoint besides the sessions listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// `[devin.queue]`: `GET /v3/enterprise/queue`.
    Queue,
    /// `[devin.consumption]`: `GET /v3/enterprise/consumption/daily`.
    Consumption,
    /// Creators of `to = "creator"` sinks: `GET /v3/enterprise/members/users/{user_id}`.
    Members,
}

impl Feature {
    pub const ALL: [Feature; 3] = [Feature::Queue, Feature::Consumption, Feature::Members];

    /// The `feature` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::Queue => "queue",
            Feature::Consumption => "consumption",
            Feature::Members => "members",
        }
    }

    /// The Devin permission the service user needs (enterprise level).
    pub fn permission(self) -> &'static str {
        match self {
            Feature::Queue => "ViewAccountMetrics",
            Feature::Consumption => "ViewAccountConsumption",
            Feature::Members => "ManageAccountMembership",
        }
    }

    /// The endpoint it reads.
    pub fn endpoint(self) -> &'static str {
        match self {
            Feature::Queue => "GET /v3/enterprise/queue",
            Feature::Consumption => "GET /v3/enterprise/consumption/daily",
            Feature::Members => "GET /v3/enterprise/members/users/{user_id}",
        }
    }

    fn slot(self) -> &'static AtomicU8 {
        static STATE: [AtomicU8; 3] = [AtomicU8::new(0), AtomicU8::new(0), AtomicU8::new(0)];
        &STATE[self as usize]
    }
}

const UNKNOWN: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;

/// Records that a configured feature is in use (gauge 1), unless it was turned off.
pub fn configured(feature: Feature) {
    if feature
        .slot()
        .compare_exchange(UNKNOWN, ON, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        crate::metrics::FEATURE_ENABLED.set(&[("feature", feature.as_str())], 1.0);
    }
}

/// Whether the feature is on (not turned off by a 403).
pub fn enabled(feature: Feature) -> bool {
    feature.slot().load(Ordering::SeqCst) != OFF
}

/// Turns a feature off after its endpoint answered 403; the first time only, logs one error
/// naming the permission. `detail` is the API error (it names the URL, never the token).
pub fn refused(feature: Feature, detail: &str) {
    if feature.slot().swap(OFF, Ordering::SeqCst) != OFF {
        crate::metrics::FEATURE_ENABLED.set(&[("feature", feature.as_str())], 0.0);
        tracing::error!(
            feature = feature.as_str(),
            permission = feature.permission(),
            error = %detail,
            "{} answered 403: the service user lacks the {} permission; the {} feature is off until a config reload or a restart (sessions are still polled)",
            feature.endpoint(),
            feature.permission(),
            feature.as_str(),
        );
    }
}

/// After a config reload: every feature a 403 turned off is tried again at its next read (and
/// logs again, once, if it is still refused).
pub fn try_again() {
    for feature in Feature::ALL {
        if feature
            .slot()
            .compare_exchange(OFF, UNKNOWN, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            tracing::info!(
                feature = feature.as_str(),
                "the {} feature is tried again after the reload",
                feature.as_str()
            );
        }
    }
}
