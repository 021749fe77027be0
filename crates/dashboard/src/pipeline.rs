//! The pipeline's health, from each analytics instance's admin port: `/healthz` and the
//! Prometheus text of `/metrics`, parsed into samples the page turns into rates and tables.

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The counter of records an analytics instance has persisted (its flushes landed).
pub const PERSISTED: &str = "analytics_persisted_records_total";

/// One sample of the Prometheus text format.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// One analytics instance as the dashboard last saw it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Instance {
    pub address: String,
    /// Its `/metrics` answered.
    pub up: bool,
    /// `/healthz`'s answer: `ok`, or why it is unhealthy or unreachable.
    pub health: String,
    pub healthy: bool,
    pub samples: Vec<Sample>,
}

/// The samples of `text` whose names start with `prefix` (comments and malformed lines are
/// skipped).
pub fn parse(text: &str, prefix: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(sample)
        .collect()
}

fn sample(line: &str) -> Option<Sample> {
    let (series, value) = line.trim_end().rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        None => (series, BTreeMap::new()),
        Some((name, rest)) => (name, labels(rest.strip_suffix('}')?)?),
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `k="v",k2="v2"` with `\"`, `\\` and `\n` escapes in the values.
fn labels(s: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek() == Some(&',') || chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => value.push(match chars.next()? {
                    'n' => '\n',
                    c => c,
                }),
                c => value.push(c),
            }
        }
        out.insert(key.trim().to_owned(), value);
    }
}

/// Scrapes the instances' admin ports.
#[derive(Debug, Clone)]
pub struct Scraper {
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Empty<bytes::Bytes>>,
    timeout: Duration,
}

impl Scraper {
    pub fn new(timeout: Duration) -> Scraper {
        Scraper {
            client: Client::builder(TokioExecutor::new()).build_http(),
            timeout,
        }
    }

    /// `(status, body)` of `GET http://{address}{path}`.
    async fn get(&self, address: &str, path: &str) -> Result<(u16, String), String> {
        let uri: hyper::Uri = format!("http://{address}{path}")
            .parse()
            .map_err(|e| format!("bad address {address:?}: {e}"))?;
        let call = async {
            let response = self.client.get(uri).await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok((status, String::from_utf8_lossy(&body).into_owned()))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))?
    }

    pub async fn instance(&self, address: &str) -> Instance {
        let (metrics, health) =
            tokio::join!(self.get(address, "/metrics"), self.get(address, "/healthz"));
        let (healthy, health) = match health {
            Ok((200, body)) => (true, body.trim().to_owned()),
            Ok((status, body)) => (false, format!("{status}: {}", body.trim())),
            Err(e) => (false, format!("unreachable: {e}")),
        };
        match metrics {
            Ok((200, text)) => Instance {
                address: address.to_owned(),
                up: true,
                health,
                healthy,
                samples: parse(&text, "analytics_"),
            },
            _ => Instance {
                address: address.to_owned(),
                up: false,
                health,
                healthy: false,
                samples: Vec::new(),
            },
        }
    }

    /// Records persisted by every instance behind `addresses`, summed: it grows when one of
    /// their flushes lands. `None` when none answers.
    pub async fn persisted(&self, addresses: &[String]) -> Option<f64> {
        let targets = targets(addresses, self.timeout).await;
        let answers =
            futures::future::join_all(targets.iter().map(|a| self.get(a, "/metrics"))).await;
        answers
            .into_iter()
            .filter_map(|answer| match answer {
                Ok((200, text)) => Some(
                    parse(&text, PERSISTED)
                        .iter()
                        .filter(|s| s.name == PERSISTED)
                        .map(|s| s.value)
                        .sum::<f64>(),
                ),
                _ => None,
            })
            .reduce(|a, b| a + b)
    }

    /// Every instance behind `addresses` (see [`targets`]).
    pub async fn all(&self, addresses: &[String]) -> Vec<Instance> {
        let targets = targets(addresses, self.timeout).await;
        futures::future::join_all(targets.iter().map(|a| self.instance(a))).await
    }
}

/// The admin addresses to scrape: a host name that resolves to several addresses (compose
/// replicas behind one service name, a headless Kubernetes Service) stands for each of them;
/// an IP address, `localhost`, and a name that does not resolve (reported unreachable, with
/// the reason) stand for themselves.
pub async fn targets(addresses: &[String], timeout: Duration) -> Vec<String> {
    let mut out = Vec::new();
    for a in addresses {
        let host = a.rsplit_once(':').map_or(a.as_str(), |(h, _)| h);
        let literal = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok();
        let resolved = if literal {
            None
        } else {
            tokio::time::timeout(timeout, tokio::net::lookup_host(a.as_str()))
                .await
                .ok()
                .and_then(Result::ok)
                .map(|found| found.map(|s| s.to_string()).collect::<Vec<_>>())
                .filter(|found| !found.is_empty())
        };
        match resolved {
            Some(mut found) => {
                found.sort();
                out.extend(found);
            }
            None => out.push(a.clone()),
        }
    }
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_parsed_with_their_labels_and_the_rest_is_skipped() {
        let text = "# HELP analytics_events_total events\n\
            # TYPE analytics_events_total counter\n\
            analytics_events_total{type=\"order_placed\",outcome=\"counted\"} 42\n\
            analytics_consumer_lag{partition=\"3\"} 7\n\
            analytics_flush_seconds_sum 1.5\n\
            analytics_dead_lettered_total{reason=\"say \\\"hi\\\"\\\\\"} 2\n\
            other_metric 9\n\
            analytics_broken{x=\"1\" nope\n";
        let s = parse(text, "analytics_");
        assert_eq!(s.len(), 4, "{s:?}");
        assert_eq!(s[0].name, "analytics_events_total");
        assert_eq!(s[0].labels["type"], "order_placed");
        assert_eq!(s[0].labels["outcome"], "counted");
        assert_eq!(s[0].value, 42.0);
        assert_eq!(s[1].labels["partition"], "3");
        assert!(s[2].labels.is_empty());
        assert_eq!(s[2].value, 1.5);
        assert_eq!(s[3].labels["reason"], "say \"hi\"\\");
    }

    #[tokio::test]
    async fn names_are_resolved_and_addresses_stand_for_themselves() {
        let t = Duration::from_secs(2);
        let given = ["127.0.0.1:9464", "localhost:9464", "[::1]:9464"].map(String::from);
        assert_eq!(targets(&given, t).await, given.to_vec());
        let unknown = ["no-such-host.invalid:9464".to_owned()];
        assert_eq!(targets(&unknown, t).await, unknown.to_vec());
    }

    #[tokio::test]
    async fn an_unreachable_instance_is_reported_down_with_the_reason() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        drop(listener);
        let i = Scraper::new(Duration::from_secs(2))
            .instance(&address)
            .await;
        assert!(!i.up && !i.healthy);
        assert!(i.health.starts_with("unreachable"), "{}", i.health);
    }
}
