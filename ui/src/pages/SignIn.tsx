import { useState } from "react";
import { api, errorText } from "../api";
import { ErrorText } from "../components/common";

interface Session {
  email: string;
  csrf_token: string;
  expires_at: string;
}

/** SignIn exchanges an email and API token for a session cookie. The token
 * is sent once and kept nowhere in the page. */
export function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [email, setEmail] = useState("");
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (ev: React.FormEvent) => {
    ev.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const s = await api<Session>("POST", "/api/v1/session", { email, token });
      setToken("");
      onSignedIn(s);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="signin">
      <h1>Sign in</h1>
      <form onSubmit={submit} aria-describedby={error ? "signin-error" : undefined}>
        <label>
          Email
          <input type="email" name="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          API token
          <input type="password" name="token" autoComplete="current-password" required value={token} onChange={(e) => setToken(e.target.value)} />
        </label>
        <p className="hint">
          The token <code>cleanroom users add EMAIL</code> printed. It is exchanged for a session that lasts 12 hours and is not stored in this browser.
        </p>
        <ErrorText error={error} id="signin-error" />
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </section>
  );
}
