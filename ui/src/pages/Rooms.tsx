import { useEffect, useState } from "react";
import { api, errorText } from "../api";
import { ErrorText, formatTime } from "../components/common";
import { linkHandler, navigate } from "../router";
import type { DCRSummary, Draft } from "../types";

interface Row {
  key: string;
  name: string;
  state: "Draft" | "Published";
  owner: string;
  when: string;
  href: string;
}

/** Rooms lists my drafts and the published clean rooms I take part in. */
export function Rooms({ me }: { me: string }) {
  const [rows, setRows] = useState<Row[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [createError, setCreateError] = useState<string | null>(null);

  useEffect(() => {
    Promise.all([api<Draft[]>("GET", "/api/v1/drafts"), api<DCRSummary[]>("GET", "/api/v1/dcrs")])
      .then(([drafts, dcrs]) => {
        const out: Row[] = drafts
          .filter((d) => !d.published_id)
          .map((d) => ({ key: "d" + d.id, name: d.definition.name || "(unnamed)", state: "Draft", owner: d.owner, when: d.updated_at, href: `/drafts/${d.id}` }));
        for (const d of dcrs) out.push({ key: "p" + d.id, name: d.name, state: "Published", owner: d.owner, when: d.published_at, href: `/dcrs/${d.id}` });
        out.sort((a, b) => b.when.localeCompare(a.when));
        setRows(out);
      })
      .catch((err) => setError(errorText(err)));
  }, []);

  const create = async (ev: React.FormEvent) => {
    ev.preventDefault();
    setCreateError(null);
    try {
      const d = await api<Draft>("POST", "/api/v1/drafts", { name, owner: me, nodes: [], participants: [{ email: me }] });
      navigate(`/drafts/${d.id}`);
    } catch (err) {
      setCreateError(errorText(err));
    }
  };

  return (
    <section>
      <h1>Clean rooms</h1>
      <form className="inline-form" onSubmit={create}>
        <label>
          New clean room name
          <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />
        </label>
        <button type="submit">Create clean room</button>
        <ErrorText error={createError} />
      </form>
      <ErrorText error={error} />
      {rows && rows.length === 0 && <p>No clean rooms yet. Create one above, or ask a clean room's owner to add you as a participant.</p>}
      {rows && rows.length > 0 && (
        <table className="rooms">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">State</th>
              <th scope="col">Owner</th>
              <th scope="col">Last change</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.key}>
                <td>
                  <a href={r.href} onClick={linkHandler(r.href)}>
                    {r.name}
                  </a>
                </td>
                <td>
                  <span className={`badge ${r.state.toLowerCase()}`}>{r.state}</span>
                </td>
                <td>{r.owner}</td>
                <td>{formatTime(r.when)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
