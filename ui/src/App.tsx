// The web UI: sign-in, then the clean rooms list, the draft editor and
// the published clean room overview.

import { useCallback, useEffect, useState } from "react";
import { ApiError, api, errorText, setCSRF, whenSignedOut } from "./api";
import { ErrorText } from "./components/common";
import { DraftEditor } from "./pages/DraftEditor";
import { Overview } from "./pages/Overview";
import { Rooms } from "./pages/Rooms";
import { SignIn } from "./pages/SignIn";
import { linkHandler, navigate, usePath } from "./router";

interface Session {
  email: string;
  csrf_token: string;
  expires_at: string;
}

export function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [signOutError, setSignOutError] = useState<string | null>(null);
  const path = usePath();

  const signedIn = useCallback((s: Session) => {
    setCSRF(s.csrf_token);
    setSession(s);
  }, []);

  useEffect(() => {
    whenSignedOut(() => {
      setCSRF("");
      setSession(null);
    });
    api<Session>("GET", "/api/v1/session")
      .then(signedIn)
      .catch(() => setSession(null));
  }, [signedIn]);

  const signOut = async () => {
    setSignOutError(null);
    try {
      await api("DELETE", "/api/v1/session");
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) {
        setSignOutError(errorText(err));
        return;
      }
    }
    setCSRF("");
    setSession(null);
    navigate("/");
  };

  if (session === undefined) return <p className="loading">Loading…</p>;

  let page: React.ReactNode;
  let m: RegExpMatchArray | null;
  if (!session) page = <SignIn onSignedIn={signedIn} />;
  else if ((m = path.match(/^\/drafts\/([^/]+)$/))) page = <DraftEditor key={m[1]} id={m[1]} me={session.email} />;
  else if ((m = path.match(/^\/dcrs\/([^/]+)$/))) page = <Overview key={m[1]} id={m[1]} me={session.email} />;
  else page = <Rooms me={session.email} />;

  return (
    <>
      <header className="topbar">
        <a href="/" className="brand" onClick={linkHandler("/")}>
          cleanroom
        </a>
        {session && (
          <div className="who">
            <span aria-label="signed in as">{session.email}</span>
            <button type="button" onClick={signOut}>
              Sign out
            </button>
            <ErrorText error={signOutError} />
          </div>
        )}
      </header>
      <main>{page}</main>
    </>
  );
}
