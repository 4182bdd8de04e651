//! Prometheus' text exposition format (0.0.4): families with their HELP
//! and TYPE lines, samples with escaped label values.

use std::fmt::Write;

/// A metric's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Untyped,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
        }
    }
}

/// A page of metrics being written.
#[derive(Default)]
pub(crate) struct Page {
    text: String,
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Page {
    /// Starts a family.
    pub(crate) fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        let _ = writeln!(self.text, "# TYPE {name} {}", kind.as_str());
        let _ = writeln!(self.text, "# HELP {name} {help}");
        self
    }

    /// A sample of the family just started.
    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{key}=\"{}\"", escape(val));
            }
            self.text.push('}');
        }
        if value.fract() == 0.0 && value.abs() < 1e15 {
            let _ = writeln!(self.text, " {}", value as i64);
        } else {
            let _ = writeln!(self.text, " {value}");
        }
        self
    }

    /// A family with one unlabelled sample.
    pub(crate) fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) {
        self.family(name, kind, help).sample(name, &[], value);
    }

    pub(crate) fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_samples_are_written_as_prometheus_reads_them() {
        let mut page = Page::default();
        page.single("rabbitmq_queues", Kind::Gauge, "Queues available", 3.0);
        page.family(
            "rabbitmq_queue_messages",
            Kind::Gauge,
            "Sum of ready and unacknowledged messages",
        )
        .sample("rabbitmq_queue_messages", &[("vhost", "/"), ("queue", "a\"b")], 1.5);
        assert_eq!(
            page.finish(),
            "# TYPE rabbitmq_queues gauge\n# HELP rabbitmq_queues Queues available\nrabbitmq_queues 3\n\
             # TYPE rabbitmq_queue_messages gauge\n# HELP rabbitmq_queue_messages Sum of ready and unacknowledged messages\n\
             rabbitmq_queue_messages{vhost=\"/\",queue=\"a\\\"b\"} 1.5\n"
        );
    }
}
