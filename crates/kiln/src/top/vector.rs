//! The query API's answer to an instant query, read one series at a time.
//!
//! A fleet's answer holds tens of thousands of series. Reading it into a `Vec` of label
//! maps (or a JSON tree) first made the answers, not the fleet, the bulk of `kiln top`'s
//! memory; here each series is handed to the caller as soon as its closing brace is read,
//! with only the labels the screen uses, borrowed from the answer's text where they have no
//! escapes, and then dropped.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The labels the screen reads; a series' other labels are skipped unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Name,
    Instance,
    Job,
    Gpu,
    Uuid,
    /// The GPU's model: `name` on `nvidia_gpu_info`.
    Model,
    Mountpoint,
    Reason,
    Xid,
    Pid,
    ProcessName,
    YarnContainer,
    ContainerId,
    SystemdUnit,
    Target,
}

const LABELS: usize = 15;

impl Label {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "__name__" => Self::Name,
            "instance" => Self::Instance,
            "job" => Self::Job,
            "gpu" => Self::Gpu,
            "uuid" => Self::Uuid,
            "name" => Self::Model,
            "mountpoint" => Self::Mountpoint,
            "reason" => Self::Reason,
            "xid" => Self::Xid,
            "pid" => Self::Pid,
            "process_name" => Self::ProcessName,
            "yarn_container" => Self::YarnContainer,
            "container_id" => Self::ContainerId,
            "systemd_unit" => Self::SystemdUnit,
            "target" => Self::Target,
            _ => return None,
        })
    }
}

/// One series of an instant vector: the labels in [`Label`] and the value.
#[derive(Debug, Default)]
pub struct Series<'a> {
    labels: [Option<Cow<'a, str>>; LABELS],
    /// `None` when the value is `NaN` or infinite, or the series is a native histogram.
    pub value: Option<f64>,
}

impl Series<'_> {
    pub fn label(&self, label: Label) -> Option<&str> {
        self.labels[label as usize].as_deref()
    }
}

/// Why an answer could not be read.
#[derive(Debug)]
pub enum AnswerError {
    /// Not JSON, or not in the API's shape: cut short, malformed, a field of the wrong type.
    Json(serde_json::Error),
    /// The API's own error answer.
    Failed { kind: String, error: String },
    /// A result of another type than an instant vector.
    NotVector(String),
}

impl From<serde_json::Error> for AnswerError {
    fn from(error: serde_json::Error) -> Self {
        Self::Json(error)
    }
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(error) => write!(f, "not the query API's JSON: {error}"),
            Self::Failed { kind, error } => write!(f, "the query failed ({kind}): {error}"),
            Self::NotVector(kind) => write!(f, "the answer is a {kind}, not an instant vector"),
        }
    }
}

impl std::error::Error for AnswerError {}

/// Reads an answer of `/api/v1/query`, calling `each` with every series of its vector in
/// turn; the number of series.
pub fn read_vector(body: &str, mut each: impl FnMut(&Series<'_>)) -> Result<usize, AnswerError> {
    let mut deserializer = serde_json::Deserializer::from_str(body);
    let mut count = 0;
    let envelope = Envelope {
        each: &mut each,
        count: &mut count,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    if envelope.status != "success" {
        return Err(AnswerError::Failed {
            kind: envelope.error_type.unwrap_or_else(|| "error".into()),
            error: envelope.error.unwrap_or_else(|| "no reason given".into()),
        });
    }
    match envelope.result_type {
        Some(kind) if kind == "vector" => Ok(count),
        Some(kind) => Err(AnswerError::NotVector(kind)),
        None => Err(AnswerError::NotVector("answer without data".into())),
    }
}

/// The error of an answer that came with an error status, when it is the API's JSON.
pub fn api_error(body: &str) -> Option<(String, String)> {
    match read_vector(body, |_| {}) {
        Err(AnswerError::Failed { kind, error }) => Some((kind, error)),
        _ => None,
    }
}

/// A string, borrowed from the answer unless it had escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// What the envelope said besides the series.
#[derive(Default)]
struct Outcome {
    status: String,
    result_type: Option<String>,
    error_type: Option<String>,
    error: Option<String>,
}

/// `{"status": …, "data": {…}, "errorType": …, "error": …}`.
struct Envelope<'f, F> {
    each: &'f mut F,
    count: &'f mut usize,
}

impl<'de, F: FnMut(&Series<'_>)> DeserializeSeed<'de> for Envelope<'_, F> {
    type Value = Outcome;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Outcome, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, F: FnMut(&Series<'_>)> Visitor<'de> for Envelope<'_, F> {
    type Value = Outcome;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the query API's answer object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Outcome, A::Error> {
        let mut outcome = Outcome::default();
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match key.as_ref() {
                "status" => outcome.status = map.next_value()?,
                "data" => {
                    outcome.result_type = map.next_value_seed(Data {
                        each: &mut *self.each,
                        count: &mut *self.count,
                    })?;
                }
                "errorType" => outcome.error_type = map.next_value()?,
                "error" => outcome.error = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(outcome)
    }
}

/// `{"resultType": "vector", "result": [series…]}`; its result type.
struct Data<'f, F> {
    each: &'f mut F,
    count: &'f mut usize,
}

impl<'de, F: FnMut(&Series<'_>)> DeserializeSeed<'de> for Data<'_, F> {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, F: FnMut(&Series<'_>)> Visitor<'de> for Data<'_, F> {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the answer's data object")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut result_type: Option<String> = None;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match key.as_ref() {
                "resultType" => result_type = Some(map.next_value()?),
                // A result of another type (Prometheus writes the type first) is skipped
                // whole: only its type is reported.
                "result" if result_type.as_deref().is_none_or(|t| t == "vector") => {
                    map.next_value_seed(Vector {
                        each: &mut *self.each,
                        count: &mut *self.count,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(
            result_type.unwrap_or_else(|| "answer without a result type".into()),
        ))
    }
}

/// `[series…]`, each handed on as it is read.
struct Vector<'f, F> {
    each: &'f mut F,
    count: &'f mut usize,
}

impl<'de, F: FnMut(&Series<'_>)> DeserializeSeed<'de> for Vector<'_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(&Series<'_>)> Visitor<'de> for Vector<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of series")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(series) = seq.next_element::<Series<'de>>()? {
            (self.each)(&series);
            *self.count += 1;
        }
        Ok(())
    }
}

impl<'de> de::Deserialize<'de> for Series<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(SeriesVisitor)
    }
}

/// `{"metric": {labels…}, "value": [time, "value"]}`.
struct SeriesVisitor;

impl<'de> Visitor<'de> for SeriesVisitor {
    type Value = Series<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a series object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut series = Series::default();
        let mut valued = false;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match key.as_ref() {
                "metric" => series.labels = map.next_value::<Labels<'de>>()?.0,
                "value" => {
                    series.value = map.next_value::<Sample>()?.0;
                    valued = true;
                }
                // A native histogram: shown as no value.
                "histogram" => {
                    map.next_value::<IgnoredAny>()?;
                    valued = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !valued {
            return Err(de::Error::missing_field("value"));
        }
        Ok(series)
    }
}

/// A series' labels, the ones in [`Label`] kept.
struct Labels<'a>([Option<Cow<'a, str>>; LABELS]);

impl<'de> de::Deserialize<'de> for Labels<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LabelsVisitor;
        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = Labels<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of labels")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut labels: [Option<Cow<'de, str>>; LABELS] = Default::default();
                while let Some(Text(name)) = map.next_key::<Text<'de>>()? {
                    match Label::from_name(&name) {
                        Some(label) => {
                            labels[label as usize] = Some(map.next_value::<Text<'de>>()?.0)
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Labels(labels))
            }
        }
        deserializer.deserialize_map(LabelsVisitor)
    }
}

/// `[time, "value"]`: the value is a string because it may be `NaN` or `+Inf`.
struct Sample(Option<f64>);

impl<'de> de::Deserialize<'de> for Sample {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SampleVisitor;
        impl<'de> Visitor<'de> for SampleVisitor {
            type Value = Sample;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a [time, \"value\"] pair")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Sample, A::Error> {
                let missing = || de::Error::invalid_length(0, &"a [time, \"value\"] pair");
                seq.next_element::<f64>()?.ok_or_else(missing)?;
                let Text(text) = seq.next_element::<Text<'de>>()?.ok_or_else(missing)?;
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &"a [time, \"value\"] pair"));
                }
                let value = text.parse::<f64>().map_err(|_| {
                    de::Error::invalid_value(de::Unexpected::Str(&text), &"a number")
                })?;
                Ok(Sample(value.is_finite().then_some(value)))
            }
        }
        deserializer.deserialize_seq(SampleVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a series gave: its instance, GPU and value.
    type Seen = (Option<String>, Option<String>, Option<f64>);

    fn read(body: &str) -> Result<Vec<Seen>, String> {
        let mut seen = Vec::new();
        read_vector(body, |s| {
            seen.push((
                s.label(Label::Instance).map(str::to_owned),
                s.label(Label::Gpu).map(str::to_owned),
                s.value,
            ));
        })
        .map_err(|e| e.to_string())?;
        Ok(seen)
    }

    #[test]
    fn series_come_one_by_one_with_the_labels_used() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"instance":"a","gpu":"0","other":"x"},"value":[1.5,"0.25"]},
            {"metric":{"instance":"b\"q","gpu":"1"},"value":[1.5,"NaN"]},
            {"metric":{"instance":"c"},"value":[1.5,"+Inf"]}
        ]},"warnings":["w"]}"#;
        assert_eq!(
            read(body).unwrap(),
            vec![
                (Some("a".into()), Some("0".into()), Some(0.25)),
                (Some("b\"q".into()), Some("1".into()), None),
                (Some("c".into()), None, None),
            ]
        );
    }

    #[test]
    fn errors_and_other_types_are_named() {
        let error = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert_eq!(
            read(error).unwrap_err(),
            "the query failed (bad_data): parse error"
        );
        assert_eq!(
            api_error(error),
            Some(("bad_data".into(), "parse error".into()))
        );
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]}]}}"#;
        assert_eq!(
            read(matrix).unwrap_err(),
            "the answer is a matrix, not an instant vector"
        );
        for bad in [
            "not json",
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}} trailing"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}"#,
        ] {
            let error = read(bad).unwrap_err();
            assert!(
                error.starts_with("not the query API's JSON"),
                "{bad}: {error}"
            );
        }
    }
}
