//! The live policy: loaded from the store (version N), held for every
//! session to read without a lock ([`PolicyHolder`]), and compiled mask
//! plans cached per version. Applying, rolling back and refreshing it are
//! operations in `policies`.
//!
//! Fail closed: with no policy, or a stored policy that does not load, every
//! command is refused with a message saying so.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use airlock_mask::{MaskPlan, MaskSpec};
use airlock_policy::{MaskObligation, MaskStyle, Policy, PolicyError};
use airlock_store::prelude::*;
use airlock_store::{PolicyVersionRecord, StoreError};

/// The policy sessions decide with, and its version.
pub struct LivePolicy {
    /// The store version (0: none).
    pub version: i64,
    /// `None` when no policy is stored or the stored one does not load.
    pub policy: Option<Policy>,
    /// Why there is no policy, for the refusal message.
    pub problem: Option<String>,
    masks: Mutex<HashMap<String, Arc<MaskPlan>>>,
}

impl LivePolicy {
    fn new(version: i64, policy: Option<Policy>, problem: Option<String>) -> Self {
        Self {
            version,
            policy,
            problem,
            masks: Mutex::new(HashMap::new()),
        }
    }

    /// No policy yet.
    pub fn none() -> Self {
        Self::new(
            0,
            None,
            Some("no policy is loaded (set `policy:` in the config or run `airlock policy apply FILE`)".into()),
        )
    }

    /// The compiled mask plan for an obligation, cached for this version.
    pub fn mask_plan(&self, obligation: &MaskObligation) -> Result<Arc<MaskPlan>, String> {
        let key = serde_json::to_string(obligation).unwrap_or_default();
        if let Ok(cache) = self.masks.lock() {
            if let Some(plan) = cache.get(&key) {
                return Ok(Arc::clone(plan));
            }
        }
        let plan = Arc::new(compile_mask(obligation).map_err(|error| error.to_string())?);
        if let Ok(mut cache) = self.masks.lock() {
            if cache.len() < 1024 {
                cache.insert(key, Arc::clone(&plan));
            }
        }
        Ok(plan)
    }
}

/// Turns the policy's mask obligation into the masker's spec.
pub fn compile_mask(obligation: &MaskObligation) -> Result<MaskPlan, airlock_mask::MaskError> {
    let style = |style: MaskStyle| match style {
        MaskStyle::Partial => airlock_mask::Style::Partial,
        MaskStyle::Full => airlock_mask::Style::Full,
        MaskStyle::Placeholder => airlock_mask::Style::Placeholder,
    };
    let builtin: Vec<String> = obligation
        .detectors
        .iter()
        .filter(|name| airlock_mask::BUILTIN_DETECTORS.contains(&name.as_str()))
        .cloned()
        .collect();
    let spec = MaskSpec {
        detectors: builtin,
        columns: obligation.columns.clone(),
        style: style(obligation.style),
        placeholder: Some(obligation.placeholder.clone()),
        custom: obligation
            .custom_detectors
            .iter()
            .map(|detector| airlock_mask::CustomDetectorSpec {
                name: detector.name.clone(),
                regex: detector.regex.clone(),
                validator: Some(match detector.validator {
                    airlock_policy::Validator::None => airlock_mask::Validator::None,
                    airlock_policy::Validator::Luhn => airlock_mask::Validator::Luhn,
                    airlock_policy::Validator::Mod97 => airlock_mask::Validator::Mod97,
                }),
                context: detector.context.clone(),
                context_window: None,
                style: detector.style.map(style),
            })
            .collect(),
    };
    MaskPlan::compile(&spec)
}

/// Parses a stored version into a live policy (never fails: a broken
/// version becomes "no policy" with the reason).
pub fn load_version(record: &PolicyVersionRecord) -> LivePolicy {
    let text = record.text.as_deref().unwrap_or("");
    match Policy::from_yaml(text, &format!("policy v{}", record.version)) {
        Ok(mut policy) => {
            policy.version = u64::try_from(record.version).unwrap_or(0);
            LivePolicy::new(record.version, Some(policy), None)
        }
        Err(error) => {
            tracing::error!(version = record.version, %error, "the stored policy does not load; refusing every command");
            LivePolicy::new(
                record.version,
                None,
                Some(format!(
                    "policy v{} does not load; every command is refused",
                    record.version
                )),
            )
        }
    }
}

/// On first start: stores the config's policy file as version 1 when the
/// store has none. Returns the live policy from the store.
pub fn bootstrap(
    store: &dyn StoreBackend,
    config_policy: Option<&Path>,
) -> Result<LivePolicy, BootstrapError> {
    if store.live_policy_version()?.is_none() {
        if let Some(path) = config_policy {
            let text = std::fs::read_to_string(path).map_err(|error| BootstrapError::Read {
                path: path.display().to_string(),
                error,
            })?;
            Policy::from_yaml(&text, &path.display().to_string())
                .map_err(BootstrapError::Invalid)?;
            store.insert_policy_version(
                &text,
                "config",
                Some(&format!("loaded from {}", path.display())),
            )?;
        }
    }
    Ok(match store.live_policy()? {
        Some(record) => load_version(&record),
        None => LivePolicy::none(),
    })
}

/// The live version, when the policy file named in the config holds other
/// text: the file is loaded on the first start only, so an edit is not
/// live until it is applied.
pub fn file_differs_from_live(store: &dyn StoreBackend, path: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(path).ok()?;
    let live = store.live_policy().ok()??;
    (live.text.as_deref() != Some(text.as_str())).then_some(live.version)
}

/// Why the policy could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("cannot read policy file {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{0}")]
    Invalid(PolicyError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Holds the live policy; cheap to read on every command.
pub struct PolicyHolder {
    live: RwLock<Arc<LivePolicy>>,
    /// The live version, readable without the lock (every `Execute` asks).
    version: std::sync::atomic::AtomicI64,
}

impl PolicyHolder {
    pub fn new(live: LivePolicy) -> Self {
        Self {
            version: std::sync::atomic::AtomicI64::new(live.version),
            live: RwLock::new(Arc::new(live)),
        }
    }

    /// The version of the policy in force now.
    pub fn current_version(&self) -> i64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<LivePolicy> {
        match self.live.read() {
            Ok(live) => Arc::clone(&live),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub(crate) fn replace(&self, live: LivePolicy) {
        let version = live.version;
        match self.live.write() {
            Ok(mut slot) => *slot = Arc::new(live),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(live),
        }
        self.version
            .store(version, std::sync::atomic::Ordering::Release);
    }
}
