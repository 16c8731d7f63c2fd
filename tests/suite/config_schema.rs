//! `devin-notify config schema`: the real binary's output, compiled by a JSON Schema validator
//! (boon, draft 2020-12), agrees with the loader.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use devin_notify::config::{Config, SCHEMA_ID};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_devin-notify");

/// Runs `devin-notify config schema` in an empty folder (no config file), as an operator would.
fn run_schema_command() -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(BIN)
        .args(["config", "schema"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("spawn devin-notify");
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the output is JSON")
}

/// The compiled schema, once for all tests.
struct Validator {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

fn validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema = run_schema_command();
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler
            .add_resource(SCHEMA_ID, schema)
            .expect("add the schema");
        // Compiling checks the schema against the draft 2020-12 meta-schema.
        let index = compiler
            .compile(SCHEMA_ID, &mut schemas)
            .unwrap_or_else(|e| panic!("the schema does not compile: {e:#}"));
        Validator { schemas, index }
    })
}

/// The schema's verdict on a TOML text: `Err` with the validator's message when it rejects it.
fn schema_verdict(toml_text: &str) -> Result<(), String> {
    let instance: Value = toml::from_str(toml_text).expect("the snippet is TOML");
    let v = validator();
    v.schemas
        .validate(&instance, v.index)
        .map_err(|e| format!("{e:#}"))
}

/// The loader's verdict, `${VAR}` resolved from a fixed environment.
fn loader_verdict(toml_text: &str) -> Result<Config, String> {
    let env = |name: &str| match name {
        "INTERVAL" => Some("45s".to_owned()),
        "LOG_FORMAT" => Some("json".to_owned()),
        "LISTEN" => Some("127.0.0.1:9464".to_owned()),
        "SINK_TYPE" => Some("slack".to_owned()),
        "EVENT" => Some("session.created".to_owned()),
        "SLACK_URL" => Some("https://hooks.slack.test/T/B/x".to_owned()),
        _ => None,
    };
    Config::from_toml(toml_text, env).map_err(|e| e.to_string())
}

#[test]
fn prints_a_draft_2020_12_schema_without_a_config_file() {
    let schema = run_schema_command();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["$id"], SCHEMA_ID);
    assert_eq!(schema["title"], "devin-notify configuration");
    assert_eq!(schema["additionalProperties"], false);
    let sections: Vec<&String> = schema["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .collect();
    for section in [
        "devin",
        "store",
        "templates",
        "delivery",
        "sinks",
        "rules",
        "log",
        "server",
        "time_intervals",
    ] {
        assert!(sections.iter().any(|s| *s == section), "{section}");
    }
    // Doc comments are descriptions; durations are described as such.
    let poll = &schema["$defs"]["DevinConfig"]["properties"]["poll_interval"];
    assert_eq!(poll["description"], "Time between the starts of two polls.");
    assert_eq!(poll["default"], "30s");
    assert_eq!(poll["$ref"], "#/$defs/Duration");
    assert!(schema["$defs"]["Duration"]["description"]
        .as_str()
        .is_some_and(|d| d.contains("humantime")));
    let types: Vec<&Value> = schema["$defs"]["SinkConfig"]["oneOf"]
        .as_array()
        .expect("sinks are a oneOf")
        .iter()
        .map(|variant| &variant["properties"]["type"]["const"])
        .collect();
    for t in ["slack", "webhook", "slack_app", "discord", "teams"] {
        assert!(types.iter().any(|c| *c == t), "{t} in {types:?}");
    }
    validator();
}

#[test]
fn every_example_config_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("config/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).expect("read");
            if let Err(e) = schema_verdict(&text) {
                panic!("{} does not validate: {e}", path.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 3, "only {seen} files in {}", dir.display());
}

#[test]
fn unknown_keys_are_rejected() {
    for text in [
        "[extra]\nx = 1\n",
        "colour = \"red\"\n",
        "[devin]\npoll_intervall = \"10s\"\n",
        "[devin.filters]\ntag = \"x\"\n",
        "[sinks.a]\ntype = \"slack\"\nurl = \"https://x.test\"\nchannel = \"C1\"\n",
        "[sinks.a]\ntype = \"webhook\"\nurl = \"https://x.test\"\nsecrett = \"x\"\n",
        "[[rules]]\nname = \"r\"\nevents = [\"session.created\"]\nsinks = [\"a\"]\n[rules.when]\ncolour = \"red\"\n",
    ] {
        assert!(schema_verdict(text).is_err(), "schema accepted:\n{text}");
        assert!(loader_verdict(text).is_err(), "loader accepted:\n{text}");
    }
}

#[test]
fn unknown_sink_type_is_rejected() {
    let text = "[sinks.a]\ntype = \"sms\"\nurl = \"https://x.test\"\n";
    let e = schema_verdict(text).expect_err("sms is no sink type");
    assert!(e.contains("oneOf") || e.contains("const"), "{e}");
    assert!(loader_verdict(text).is_err());
    let text = "[sinks.a]\nurl = \"https://x.test\"\n";
    assert!(schema_verdict(text).is_err(), "a sink without a type");
    assert!(loader_verdict(text).is_err());
}

#[test]
fn wrong_types_behave_as_the_loader_does() {
    // The loader takes whole seconds for a duration: so does the schema.
    let text = "[devin]\npoll_interval = 5\n";
    assert_eq!(
        loader_verdict(text).map(|c| c.devin.poll_interval.as_secs()),
        Ok(5)
    );
    assert_eq!(schema_verdict(text), Ok(()));
    for text in [
        "[devin]\npoll_interval = 1.5\n",
        "[devin]\npoll_interval = -1\n",
        "[devin]\npoll_interval = true\n",
        "[devin]\npage_size = \"5\"\n",
        "[devin]\nfetch_messages = \"true\"\n",
        "[delivery]\nmax_attempts = 2.5\n",
    ] {
        assert!(loader_verdict(text).is_err(), "loader accepted:\n{text}");
        assert!(schema_verdict(text).is_err(), "schema accepted:\n{text}");
    }
}

/// Snippets whose verdict needs no other part of the file, with the verdict both must give.
const AGREEMENT: &[(&str, bool)] = &[
    ("", true),
    ("[devin]\npoll_interval = \"1h 30m\"\n", true),
    ("[devin]\npoll_interval = \"1.5s\"\n", true),
    ("[devin]\npoll_interval = \"often\"\n", false),
    ("[devin]\npoll_interval = \"5\"\n", false),
    ("[devin]\npoll_interval = \"${INTERVAL}\"\n", true),
    ("[devin]\nfull_resync_every = \"0\"\n", true),
    ("[devin]\ntoken = 12345\n", true),
    ("[devin]\ntoken = [\"a\"]\n", false),
    ("[devin]\npage_size = 200\n", true),
    ("[devin]\npage_size = 201\n", false),
    ("[devin]\npage_size = 0\n", false),
    ("[devin]\nmax_concurrent_requests = 64\n", true),
    ("[devin]\nmax_concurrent_requests = 65\n", false),
    ("[devin]\nmax_response_bytes = 1023\n", false),
    ("[devin]\nlast_message_max_chars = 0\n", false),
    ("[devin.filters]\ntags = \"team-a\"\n", true),
    ("[devin.filters]\ntags = [\"team-a\", \"team-b\"]\n", true),
    ("[devin.filters]\ntags = [1]\n", false),
    ("[devin.filters]\ncreated_after = 1700000000\n", true),
    ("[devin.filters]\ncreated_after = \"1700000000\"\n", false),
    ("[devin.filters]\ncreated_after = 1979-05-27T07:32:00Z\n", false),
    ("[store]\nbaseline = \"notify\"\n", true),
    ("[store]\nbaseline = \"loud\"\n", false),
    ("[store]\nbaseline = 1\n", false),
    ("[store]\ncache_capacity = 1048575\n", false),
    ("[store]\npath = 5\n", false),
    ("[delivery]\nmax_attempts = 0\n", false),
    ("[delivery]\ninitial_backoff = \"1m\"\n", true),
    ("[log]\nformat = \"json\"\n", true),
    ("[log]\nformat = \"JSON\"\n", false),
    ("[log]\nformat = \"${LOG_FORMAT}\"\n", true),
    ("[log]\nlevel = 5\n", false),
    ("[templates]\ndir = \"templates\"\n", true),
    ("[server]\nlisten = \"127.0.0.1:9464\"\n", true),
    ("[server]\nlisten = \"[::1]:9464\"\n", true),
    ("[server]\nlisten = \"localhost:9464\"\n", false),
    ("[server]\nlisten = \"127.0.0.1\"\n", false),
    ("[server]\nlisten = \"256.0.0.1:80\"\n", false),
    ("[server]\nlisten = \"127.0.0.1:65536\"\n", false),
    ("[server]\nlisten = \"${LISTEN}\"\n", true),
    ("sinks = 5\n", false),
    ("rules = 5\n", false),
    ("[sinks.a]\ntype = \"slack\"\nurl = \"${SLACK_URL}\"\n", true),
    ("[sinks.a]\ntype = \"slack\"\n", false),
    ("[sinks.a]\ntype = \"slack\"\nurl = \"https://x.test\"\nconcurrency = 256\n", true),
    ("[sinks.a]\ntype = \"slack\"\nurl = \"https://x.test\"\nconcurrency = 257\n", false),
    ("[sinks.a]\ntype = \"slack\"\nurl = \"https://x.test\"\nmax_per_second = 0.5\n", true),
    ("[sinks.a]\ntype = \"slack\"\nurl = \"https://x.test\"\nmax_per_second = 0\n", false),
    ("[sinks.a]\ntype = \"${SINK_TYPE}\"\nurl = \"https://x.test\"\n", true),
    ("[sinks.a]\ntype = \"webhook\"\nurl = \"https://x.test\"\nformat = \"cloudevents\"\n", true),
    ("[sinks.a]\ntype = \"webhook\"\nurl = \"https://x.test\"\nformat = \"xml\"\n", false),
    ("[sinks.a]\ntype = \"webhook\"\nurl = \"https://x.test\"\nheaders = { \"X-Team\" = \"a\" }\n", true),
    ("[sinks.a]\ntype = \"webhook\"\nurl = \"https://x.test\"\nheaders = [\"X-Team\"]\n", false),
    ("[sinks.a]\ntype = \"slack_app\"\ntoken = \"xoxb-1\"\nchannel = \"C1\"\n", true),
    ("[sinks.a]\ntype = \"slack_app\"\ntoken = \"xoxb-1\"\n", false),
    ("[sinks.a]\ntype = \"slack_app\"\ntoken = \"xoxb-1\"\nchannel = \"C1\"\nupdate_parent = \"yes\"\n", false),
    (RULE, true),
    ("[sinks.a]\ntype = \"slack\"\nurl = \"https://x.test\"\n[[rules]]\nname = \"r\"\nevents = [\"${EVENT}\"]\nsinks = [\"a\"]\n", true),
    ("[sinks.a]\ntype = \"slack\"\nurl = \"https://x.test\"\n[[rules]]\nname = \"r\"\nevents = [\"session.exploded\"]\nsinks = [\"a\"]\n", false),
    ("[sinks.a]\ntype = \"slack\"\nurl = \"https://x.test\"\n[[rules]]\nname = \"r\"\nevents = []\nsinks = [\"a\"]\n", false),
    ("[sinks.a]\ntype = \"slack\"\nurl = \"https://x.test\"\n[[rules]]\nname = \" \"\nevents = [\"session.created\"]\nsinks = [\"a\"]\n", false),
    ("[sinks.a]\ntype = \"slack\"\nurl = \"https://x.test\"\n[[rules]]\nname = \"r\"\nevents = [\"session.created\"]\nsinks = [\"a\", \"a\"]\n", false),
    ("[sinks.a]\ntype = \"slack\"\nurl = \"https://x.test\"\n[[rules]]\nname = \"r\"\nevents = [\"session.created\"]\nsinks = []\n", false),
    ("[sinks.a]\ntype = \"slack\"\nurl = \"https://x.test\"\n[[rules]]\nname = \"r\"\nevents = \"session.created\"\nsinks = [\"a\"]\n", false),
    ("[sinks.a]\ntype = \"slack\"\nurl = \"https://x.test\"\n[[rules]]\nname = \"r\"\nevents = [\"session.acus_exceeded\"]\nsinks = [\"a\"]\n[rules.when]\nacus_over = -1\n", false),
    ("[time_intervals.n]\ntimezone = \"Europe/Paris\"\ntimes = [{ from = \"19:00\", to = \"08:00\" }, { from = \"12:00\", to = \"24:00\" }]\nweekdays = [\"monday:friday\"]\ndays_of_month = [1, \"-3:-1\"]\nmonths = [\"june:august\", 12]\n", true),
    ("[time_intervals.n]\ntimes = [{ from = \"7pm\", to = \"08:00\" }]\n", false),
    ("[time_intervals.n]\ntimes = [{ from = \"19:00\" }]\n", false),
    ("[time_intervals.n]\nweekday = [\"monday\"]\n", false),
    ("[time_intervals.n]\nweekdays = []\n", false),
    ("[sinks.a]\ntype = \"slack\"\nurl = \"https://x.test\"\n[time_intervals.n]\n[[rules]]\nname = \"r\"\nevents = [\"session.created\"]\nsinks = [\"a\"]\nmute_during = [\"n\"]\nactive_during = [\"n\"]\ncollapse_held = true\n", true),
    ("[sinks.a]\ntype = \"slack\"\nurl = \"https://x.test\"\n[time_intervals.n]\n[[rules]]\nname = \"r\"\nevents = [\"session.created\"]\nsinks = [\"a\"]\nmute_during = \"n\"\n", false),
];

const RULE: &str = r#"
[sinks.team_slack]
type = "slack"
url = "https://hooks.slack.test/T/B/x"

[[rules]]
name = "needs-input"
events = ["session.status_changed", "session.waiting"]
sinks = ["team_slack"]
template = "needs_input"
remind_after = "15m"
repeat_every = 3600
[rules.when]
status_detail = ["waiting_for_user", "waiting_for_approval"]
tags = "team-payments"
acus_over = 10
"#;

#[test]
fn loader_and_schema_agree() {
    let mut disagreements = Vec::new();
    for (text, valid) in AGREEMENT {
        let loader = loader_verdict(text);
        let schema = schema_verdict(text);
        if loader.is_ok() != *valid || schema.is_ok() != *valid {
            disagreements.push(format!(
                "{text:?}: expected {}, loader {:?}, schema {:?}",
                if *valid { "valid" } else { "invalid" },
                loader.err(),
                schema.err()
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// The TOML text `key = value` of a JSON scalar (JSON's strings, numbers and booleans are
/// TOML's too).
fn toml_line(key: &str, value: &Value) -> String {
    assert!(
        value.is_string() || value.is_number() || value.is_boolean(),
        "{key}: {value}"
    );
    format!("{key} = {value}\n")
}

/// The `default` of each property of a `$defs` entry.
fn defaults(schema: &Value, def: &str) -> Vec<(String, Value)> {
    schema["$defs"][def]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{def} has properties"))
        .iter()
        .filter_map(|(k, p)| p.get("default").map(|d| (k.clone(), d.clone())))
        .collect()
}

#[test]
fn defaults_are_the_loaders() {
    let schema = run_schema_command();
    let mut text = String::new();
    for (section, def) in [
        ("devin", "DevinConfig"),
        ("store", "StoreConfig"),
        ("delivery", "DeliveryConfig"),
        ("log", "LogConfig"),
    ] {
        let found = defaults(&schema, def);
        assert!(found.len() >= 2, "{def}: {found:?}");
        text.push_str(&format!("[{section}]\n"));
        for (key, value) in found {
            text.push_str(&toml_line(&key, &value));
        }
    }
    let written = loader_verdict(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        format!("{written:?}"),
        format!("{:?}", Config::default()),
        "{text}"
    );
    assert_eq!(schema_verdict(&text), Ok(()));

    // Within sinks: a sink with its defaults written out is the sink without them.
    let variants = schema["$defs"]["SinkConfig"]["oneOf"]
        .as_array()
        .expect("oneOf");
    for variant in variants
        .iter()
        .filter(|v| v["properties"]["type"]["const"].is_string())
    {
        let mut minimal = format!(
            "[sinks.a]\ntype = {}\n",
            variant["properties"]["type"]["const"]
        );
        // A variant whose keys are required one way or another (`slack_app`: `channel`, or
        // `to`) takes the first way's.
        let either = variant["oneOf"][0]["required"].as_array().cloned();
        let required = variant["required"].as_array().expect("required");
        for key in required.iter().chain(either.iter().flatten()) {
            minimal.push_str(match key.as_str() {
                Some("type") => "",
                Some("url") => "url = \"https://x.test/\"\n",
                Some("token") => "token = \"xoxb-1\"\n",
                Some("channel") => "channel = \"C1\"\n",
                other => panic!("a sample value for {other:?}"),
            });
        }
        let mut full = minimal.clone();
        for (key, p) in variant["properties"].as_object().expect("properties") {
            if let Some(default) = p.get("default") {
                full.push_str(&toml_line(key, default));
            }
        }
        let minimal_config = loader_verdict(&minimal).unwrap_or_else(|e| panic!("{e}\n{minimal}"));
        let full_config = loader_verdict(&full).unwrap_or_else(|e| panic!("{e}\n{full}"));
        assert_eq!(
            format!("{:?}", minimal_config.sinks),
            format!("{:?}", full_config.sinks),
            "{full}"
        );
    }
}
