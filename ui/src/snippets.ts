// What the file browser shows of a dependency: the paths it gives a
// computation under /input (DESIGN.md section 4), and for each a snippet
// that reads it, in the language of the computation that depends on it.

import type { Node, NodeKind, OutputFile } from "./types";

export interface InputFile {
  path: string; // absolute, under /input
  label: string; // what the browser lists
  snippet: string | null; // null: nothing to copy (e.g. a schema file)
}

/** varName turns a node name into an identifier for the snippet. */
export function varName(name: string): string {
  let v = name.replace(/[^A-Za-z0-9_]/g, "_");
  if (/^[0-9]/.test(v)) v = "_" + v;
  return v;
}

function tableSnippet(dep: string, lang: NodeKind): string {
  const v = varName(dep);
  if (lang === "sql") return `SELECT * FROM ${dep}`;
  if (lang === "r") return `${v} <- read.csv("/input/${dep}/dataset.csv", header = FALSE)\n`;
  return `import cleanroom_util\n${v} = cleanroom_util.sql.read_sql_data_from_dir("/input/${dep}/")\n`;
}

function fileSnippet(path: string, v: string, lang: NodeKind): string {
  if (path.toLowerCase().endsWith(".csv")) {
    if (lang === "r") return `${v} <- read.csv("${path}")\n`;
    return `import pandas\n${v} = pandas.read_csv("${path}")\n`;
  }
  if (lang === "r") return `${v} <- readLines("${path}")\n`;
  return `with open("${path}", "r") as f:\n    ${v} = f.read()\n`;
}

/** inputFiles returns what dep gives a computation of kind lang, given
 * the files dep wrote in the draft's last test run (Python and R). */
export function inputFiles(dep: Node, lang: NodeKind, outputs?: OutputFile[] | null): InputFile[] {
  const base = `/input/${dep.name}`;
  switch (dep.kind) {
    case "raw":
      return [{ path: base, label: dep.name, snippet: fileSnippet(base, varName(dep.name), lang) }];
    case "table":
    case "sql":
      return [
        { path: `${base}/dataset.csv`, label: `${dep.name}/dataset.csv`, snippet: tableSnippet(dep.name, lang) },
        { path: `${base}/schema.json`, label: `${dep.name}/schema.json`, snippet: null },
      ];
    default:
      return (outputs ?? []).map((o) => {
        const path = `${base}/${o.path}`;
        const stem = o.path.replace(/\.[^.]*$/, "");
        return { path, label: `${dep.name}/${o.path}`, snippet: fileSnippet(path, varName(stem), lang) };
      });
  }
}

/** staticFileSnippet reads a computation's own static file. */
export function staticFileSnippet(name: string, lang: NodeKind): string {
  return fileSnippet(`/input/code/${name}`, varName(name.replace(/\.[^.]*$/, "")), lang);
}

/** copyText puts text on the clipboard, with a fallback for pages served
 * over plain HTTP from another host, where the Clipboard API is missing. */
export async function copyText(text: string): Promise<void> {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const ta = document.createElement("textarea");
  ta.value = text;
  ta.setAttribute("readonly", "");
  ta.className = "offscreen";
  document.body.appendChild(ta);
  ta.select();
  document.execCommand("copy");
  ta.remove();
}
