//! Admin requests the rdkafka crate does not wrap, or wraps without their per-resource
//! errors: CreateAcls, DeleteAcls, and AlterConfigs (rdkafka 0.39 reports every altered
//! resource as a success, which would turn a refusal into a false breach). This module
//! calls librdkafka directly: the only `unsafe` code in the workspace, in one function
//! that owns every pointer it creates.
//!
//! Every request is harmless even if it were granted: the ACLs name a principal that does
//! not exist (`User:atk-<run>`) and the config value is the topic's default, so a breach is
//! loud in the verdict, not in the cluster.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::time::Duration;

use platform::ObservedContext;
use rdkafka::admin::AdminClient;
use rdkafka::bindings as rd;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::probe::{self, Observation, Refusal, Watch};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Grant `principal` Describe on topic `topic`.
    CreateAcl { principal: String, topic: String },
    /// Delete every ACL of `principal`.
    DeleteAcls { principal: String },
    /// Set one config of a topic.
    AlterTopicConfig {
        topic: String,
        key: String,
        value: String,
    },
}

/// The broker's answer: `Ok` if the change was accepted, else the error code and text.
type Answer = Result<(), (Option<RDKafkaErrorCode>, String)>;

fn cstring(s: &str) -> Result<CString, (Option<RDKafkaErrorCode>, String)> {
    CString::new(s).map_err(|_| (None, format!("{s:?} contains a NUL byte")))
}

fn request(client: &AdminClient<ObservedContext>, change: &Change, timeout: Duration) -> Answer {
    use rd::rd_kafka_AclOperation_t as Op;
    use rd::rd_kafka_AclPermissionType_t as Perm;
    use rd::rd_kafka_ResourcePatternType_t as Pattern;
    use rd::rd_kafka_ResourceType_t as Res;

    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let rk = client.inner().native_ptr();
    let any = cstring("*")?;
    let (a, b, c) = match change {
        Change::CreateAcl { principal, topic } => (cstring(principal)?, cstring(topic)?, any),
        Change::DeleteAcls { principal } => (cstring(principal)?, any.clone(), any),
        Change::AlterTopicConfig { topic, key, value } => {
            (cstring(topic)?, cstring(key)?, cstring(value)?)
        }
    };
    let mut errstr = [0 as std::ffi::c_char; 512];
    // SAFETY: every pointer below is created here, checked for null before use, used while
    // `client` (which outlives this call) is alive, and destroyed exactly once before
    // returning. The result arrays belong to the event and are read before it is destroyed.
    // The C strings outlive every call that reads them.
    unsafe {
        let (op, mut object) = match change {
            Change::CreateAcl { .. } => (
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEACLS,
                rd::rd_kafka_AclBinding_new(
                    Res::RD_KAFKA_RESOURCE_TOPIC,
                    b.as_ptr(),
                    Pattern::RD_KAFKA_RESOURCE_PATTERN_LITERAL,
                    a.as_ptr(),
                    c.as_ptr(),
                    Op::RD_KAFKA_ACL_OPERATION_DESCRIBE,
                    Perm::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW,
                    errstr.as_mut_ptr(),
                    errstr.len(),
                )
                .cast::<std::ffi::c_void>(),
            ),
            Change::DeleteAcls { .. } => (
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DELETEACLS,
                rd::rd_kafka_AclBindingFilter_new(
                    Res::RD_KAFKA_RESOURCE_ANY,
                    std::ptr::null(),
                    Pattern::RD_KAFKA_RESOURCE_PATTERN_ANY,
                    a.as_ptr(),
                    std::ptr::null(),
                    Op::RD_KAFKA_ACL_OPERATION_ANY,
                    Perm::RD_KAFKA_ACL_PERMISSION_TYPE_ANY,
                    errstr.as_mut_ptr(),
                    errstr.len(),
                )
                .cast(),
            ),
            Change::AlterTopicConfig { .. } => {
                let resource =
                    rd::rd_kafka_ConfigResource_new(Res::RD_KAFKA_RESOURCE_TOPIC, a.as_ptr());
                if !resource.is_null() {
                    rd::rd_kafka_ConfigResource_set_config(resource, b.as_ptr(), c.as_ptr());
                }
                (
                    rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ALTERCONFIGS,
                    resource.cast(),
                )
            }
        };
        if object.is_null() {
            return Err((
                None,
                CStr::from_ptr(errstr.as_ptr())
                    .to_string_lossy()
                    .into_owned(),
            ));
        }
        let options = rd::rd_kafka_AdminOptions_new(rk, op);
        let queue = rd::rd_kafka_queue_new(rk);
        rd::rd_kafka_AdminOptions_set_request_timeout(
            options,
            timeout_ms,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        match change {
            Change::CreateAcl { .. } => rd::rd_kafka_CreateAcls(
                rk,
                std::ptr::addr_of_mut!(object).cast(),
                1,
                options,
                queue,
            ),
            Change::DeleteAcls { .. } => rd::rd_kafka_DeleteAcls(
                rk,
                std::ptr::addr_of_mut!(object).cast(),
                1,
                options,
                queue,
            ),
            Change::AlterTopicConfig { .. } => rd::rd_kafka_AlterConfigs(
                rk,
                std::ptr::addr_of_mut!(object).cast(),
                1,
                options,
                queue,
            ),
        }
        let event = rd::rd_kafka_queue_poll(queue, timeout_ms.saturating_add(1000));
        let text = |p: *const std::ffi::c_char| {
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        // An ACL result's error object: null means accepted.
        let error_of = |e: *const rd::rd_kafka_error_t| {
            if e.is_null() {
                (RDKafkaErrorCode::NoError, String::new())
            } else {
                (
                    rd::rd_kafka_error_code(e).into(),
                    text(rd::rd_kafka_error_string(e)),
                )
            }
        };
        let answer = if event.is_null() {
            Err((None, "no answer within the timeout".to_owned()))
        } else if rd::rd_kafka_event_error(event)
            != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        {
            Err((
                Some(rd::rd_kafka_event_error(event).into()),
                text(rd::rd_kafka_event_error_string(event)),
            ))
        } else {
            let mut n = 0usize;
            // (code, text) of the one result, if there is one.
            let result: Option<(RDKafkaErrorCode, String)> = match change {
                Change::CreateAcl { .. } => {
                    let r = rd::rd_kafka_CreateAcls_result_acls(
                        rd::rd_kafka_event_CreateAcls_result(event),
                        &mut n,
                    );
                    (n > 0).then(|| error_of(rd::rd_kafka_acl_result_error(*r)))
                }
                Change::DeleteAcls { .. } => {
                    let r = rd::rd_kafka_DeleteAcls_result_responses(
                        rd::rd_kafka_event_DeleteAcls_result(event),
                        &mut n,
                    );
                    (n > 0).then(|| error_of(rd::rd_kafka_DeleteAcls_result_response_error(*r)))
                }
                Change::AlterTopicConfig { .. } => {
                    let r = rd::rd_kafka_AlterConfigs_result_resources(
                        rd::rd_kafka_event_AlterConfigs_result(event),
                        &mut n,
                    );
                    (n > 0).then(|| {
                        (
                            rd::rd_kafka_ConfigResource_error(*r).into(),
                            text(rd::rd_kafka_ConfigResource_error_string(*r)),
                        )
                    })
                }
            };
            match result {
                None => Err((None, "the answer holds no result".to_owned())),
                Some((RDKafkaErrorCode::NoError, _)) => Ok(()),
                Some((code, t)) => Err((Some(code), t)),
            }
        };
        if !event.is_null() {
            rd::rd_kafka_event_destroy(event);
        }
        rd::rd_kafka_queue_destroy(queue);
        rd::rd_kafka_AdminOptions_destroy(options);
        match change {
            Change::CreateAcl { .. } | Change::DeleteAcls { .. } => {
                rd::rd_kafka_AclBinding_destroy(object.cast())
            }
            Change::AlterTopicConfig { .. } => rd::rd_kafka_ConfigResource_destroy(object.cast()),
        }
        answer
    }
}

/// Make one change as the principal of `config`.
pub async fn attempt(
    config: &ClientConfig,
    change: Change,
    timeout: Duration,
    refusal: Refusal,
) -> Observation {
    let config = config.clone();
    probe::blocking(move || {
        let mut watch = Watch::new(refusal);
        if let Some(client) = watch.client::<AdminClient<ObservedContext>>(&config) {
            match request(&client, &change, timeout) {
                Ok(()) => watch.got_through(format!("{change:?} accepted")),
                Err((code, text)) => watch.note(code, &text),
            }
        }
        watch.finish()
    })
    .await
}
