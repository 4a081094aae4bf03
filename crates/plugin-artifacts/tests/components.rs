//! Smoke test of the built components through wasmtime's dynamic API (no bindgen: the host
//! owns the only one): each instantiates with an EMPTY linker, and every export works through
//! the canonical ABI with `sluice:plugin@0.2` column batches: metadata, init, process, and
//! for the window advance, snapshot, restore.

use sluice_plugin_artifacts::{TURNSTILE_PARSE, TURNSTILE_WINDOW};
use wasmtime::component::{Component, Instance, Linker, Val};
use wasmtime::{Engine, Store};

const H: i64 = 3_600_000;

struct Plugin {
    store: Store<()>,
    instance: Instance,
}

impl Plugin {
    fn load(engine: &Engine, path: &str) -> Plugin {
        let component = Component::from_file(engine, path).unwrap();
        let mut store = Store::new(engine, ());
        let instance = Linker::new(engine)
            .instantiate(&mut store, &component)
            .unwrap();
        Plugin { store, instance }
    }

    fn call(&mut self, name: &str, params: &[Val]) -> Val {
        let func = self
            .instance
            .get_func(&mut self.store, name)
            .unwrap_or_else(|| panic!("no export {name}"));
        let mut results = [Val::Bool(false)];
        func.call(&mut self.store, params, &mut results).unwrap();
        let [result] = results;
        result
    }
}

fn field(name: &str, ty: &str) -> Val {
    Val::Record(vec![
        ("name".into(), Val::String(name.into())),
        ("ty".into(), Val::Enum(ty.into())),
        ("nullable".into(), Val::Bool(false)),
    ])
}

fn get<'a>(record: &'a Val, name: &str) -> &'a Val {
    let Val::Record(fields) = record else {
        panic!("{record:?} is not a record")
    };
    &fields
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no field {name}"))
        .1
}

fn ok(result: Val) -> Val {
    match result {
        Val::Result(Ok(Some(v))) => *v,
        Val::Result(Ok(None)) => Val::Tuple(vec![]),
        other => panic!("expected ok, got {other:?}"),
    }
}

fn err(result: Val) -> String {
    match result {
        Val::Result(Err(Some(v))) => match *v {
            Val::String(s) => s,
            other => panic!("{other:?}"),
        },
        other => panic!("expected err, got {other:?}"),
    }
}

fn list_len(v: &Val) -> usize {
    let Val::List(items) = v else {
        panic!("{v:?} is not a list")
    };
    items.len()
}

/// A `sluice:plugin@0.2` batch of one bytes column: `n + 1` offsets at 0, the data after.
fn bytes_batch(lines: &[&str]) -> Val {
    let data_at = ((lines.len() + 1) * 4).next_multiple_of(8);
    let mut arena = vec![0u8; data_at];
    for (i, line) in lines.iter().enumerate() {
        arena.extend_from_slice(line.as_bytes());
        let end = (arena.len() - data_at) as u32;
        arena[(i + 1) * 4..(i + 2) * 4].copy_from_slice(&end.to_le_bytes());
    }
    let column = Val::Record(vec![
        ("validity".into(), Val::Option(None)),
        ("values".into(), Val::U32(0)),
        ("data".into(), Val::U32(data_at as u32)),
        ("dictionary".into(), Val::Option(None)),
    ]);
    Val::Record(vec![
        ("len".into(), Val::U32(lines.len() as u32)),
        (
            "arena".into(),
            Val::List(arena.into_iter().map(Val::U8).collect()),
        ),
        ("columns".into(), Val::List(vec![column])),
    ])
}

/// The number of rows of an output batch.
fn rows_len(batch: &Val) -> u32 {
    match get(batch, "len") {
        Val::U32(n) => *n,
        other => panic!("len is {other:?}"),
    }
}

/// Runs turnstile-parse on a header, two rows and garbage; returns (output schema, output).
fn parse_some_lines(engine: &Engine) -> (Val, Val) {
    let mut parse = Plugin::load(engine, TURNSTILE_PARSE);
    let meta = parse.call("metadata", &[]);
    assert_eq!(get(&meta, "name"), &Val::String("turnstile-parse".into()));
    let not_yet = parse.call("process", &[bytes_batch(&[])]);
    assert_eq!(err(not_yet), "not initialised");
    let input = || Val::List(vec![field("value", "bytes")]);
    let bad = parse.call(
        "init",
        &[Val::String(r#"{"format":"csv"}"#.into()), input()],
    );
    assert!(err(bad).contains("`format`"));
    let schema = ok(parse.call("init", &[Val::String("{}".into()), input()]));
    assert_eq!(list_len(&schema), 10);
    let lines = [
        ",CA,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS",
        "0,A002,R051,02-00-00,59 ST,NQR456W,BMT,12/30/2023,03:00:00,REGULAR,100,50",
        "1,A002,R051,02-00-00,59 ST,NQR456W,BMT,12/30/2023,07:00:00,REGULAR,110,57",
        "garbage",
    ];
    let parsed = ok(parse.call("process", &[bytes_batch(&lines)]));
    assert_eq!(
        get(&parsed, "origins"),
        &Val::List(vec![Val::U32(1), Val::U32(2)])
    );
    assert_eq!(list_len(get(&parsed, "failures")), 1);
    (schema, parsed)
}

#[test]
fn parse_then_window_through_the_components() {
    let engine = Engine::default();
    let (schema, parsed) = parse_some_lines(&engine);
    let mut window = Plugin::load(&engine, TURNSTILE_WINDOW);
    let spec = Val::Record(vec![
        ("event-time".into(), Val::String("timestamp".into())),
        ("size".into(), Val::S64(4 * H)),
        ("slide".into(), Val::S64(4 * H)),
    ]);
    let config = Val::String(r#"{"counters":"cumulative"}"#.into());
    let out_schema = ok(window.call("init", &[config, schema, spec]));
    assert_eq!(list_len(&out_schema), 5);
    let rows = get(&parsed, "rows").clone();
    let processed = ok(window.call("process", &[rows, Val::S64(0)]));
    assert_eq!(rows_len(get(&processed, "rows")), 0);
    let Val::List(state) = window.call("snapshot", &[]) else {
        panic!("snapshot is not a list")
    };
    assert_eq!(
        ok(window.call("restore", &[Val::List(state)])),
        Val::Tuple(vec![])
    );
    assert!(err(window.call("restore", &[Val::List(vec![Val::U8(1); 9])])).contains("snapshot"));
    let closed = ok(window.call("advance", &[Val::S64(i64::MAX)]));
    assert_eq!(rows_len(get(&closed, "rows")), 1);
}
