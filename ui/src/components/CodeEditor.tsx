// The code editor of scripts and static files: CodeMirror 6 with syntax
// highlighting and line numbers, a marker on the line a test failed at.

import { useEffect, useRef } from "react";
import { basicSetup } from "codemirror";
import { Compartment, EditorState, RangeSet, StateEffect, StateField } from "@codemirror/state";
import { Decoration, EditorView, GutterMarker, gutter } from "@codemirror/view";
import { StreamLanguage } from "@codemirror/language";
import { python } from "@codemirror/lang-python";
import { sql } from "@codemirror/lang-sql";
import { r } from "@codemirror/legacy-modes/mode/r";

/** The CSP nonce the server put in the page, for the editor's styles. */
const nonce = document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content ?? "";

export type Language = "python" | "sql" | "r" | "text";

function languageExtension(lang: Language) {
  switch (lang) {
    case "python":
      return python();
    case "sql":
      return sql();
    case "r":
      return StreamLanguage.define(r);
    default:
      return [];
  }
}

const setErrorLine = StateEffect.define<number>();

class ErrorMarker extends GutterMarker {
  toDOM() {
    const el = document.createElement("span");
    el.className = "cm-error-marker";
    el.textContent = "●";
    el.title = "the test failed here";
    return el;
  }
}

const errorLineField = StateField.define<number>({
  create: () => 0,
  update(line, tr) {
    for (const e of tr.effects) if (e.is(setErrorLine)) return e.value;
    return tr.docChanged ? 0 : line;
  },
  provide: (f) => [
    EditorView.decorations.from(f, (line) => (view: EditorView) => {
      if (line < 1 || line > view.state.doc.lines) return Decoration.none;
      const at = view.state.doc.line(line).from;
      return Decoration.set([Decoration.line({ class: "cm-error-line", attributes: { "data-error-line": String(line) } }).range(at)]);
    }),
    gutter({
      class: "cm-error-gutter",
      markers: (view) => {
        const line = view.state.field(f);
        if (line < 1 || line > view.state.doc.lines) return RangeSet.empty;
        return RangeSet.of([new ErrorMarker().range(view.state.doc.line(line).from)]);
      },
    }),
  ],
});

interface Props {
  value: string;
  onChange?: (v: string) => void;
  language: Language;
  readOnly?: boolean;
  errorLine?: number;
  label: string;
  id?: string;
}

export function CodeEditor({ value, onChange, language, readOnly, errorLine, label, id }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const onChangeRef = useRef(onChange);
  onChangeRef.current = onChange;
  const langConf = useRef(new Compartment());
  const roConf = useRef(new Compartment());

  useEffect(() => {
    const v = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: value,
        extensions: [
          basicSetup,
          EditorView.cspNonce.of(nonce),
          langConf.current.of(languageExtension(language)),
          roConf.current.of([EditorState.readOnly.of(!!readOnly), EditorView.editable.of(!readOnly)]),
          errorLineField,
          EditorView.contentAttributes.of({ "aria-label": label }),
          EditorView.updateListener.of((u) => {
            if (u.docChanged) onChangeRef.current?.(u.state.doc.toString());
          }),
        ],
      }),
    });
    view.current = v;
    return () => v.destroy();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    const v = view.current!;
    if (v.state.doc.toString() !== value) v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: value } });
  }, [value]);

  useEffect(() => {
    view.current!.dispatch({ effects: langConf.current.reconfigure(languageExtension(language)) });
  }, [language]);

  useEffect(() => {
    view.current!.dispatch({ effects: roConf.current.reconfigure([EditorState.readOnly.of(!!readOnly), EditorView.editable.of(!readOnly)]) });
  }, [readOnly]);

  useEffect(() => {
    const v = view.current!;
    v.dispatch({ effects: setErrorLine.of(errorLine ?? 0) });
    if (errorLine && errorLine <= v.state.doc.lines) {
      v.dispatch({ effects: EditorView.scrollIntoView(v.state.doc.line(errorLine).from, { y: "center" }) });
    }
  }, [errorLine]);

  return <div className="code-editor" ref={host} id={id} data-language={language} />;
}
