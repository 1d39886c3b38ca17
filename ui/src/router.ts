// A small router over the History API: the server answers every non-API
// path with the UI, so these paths survive a reload.

import { useSyncExternalStore } from "react";

const listeners = new Set<() => void>();

function subscribe(f: () => void) {
  listeners.add(f);
  window.addEventListener("popstate", f);
  return () => {
    listeners.delete(f);
    window.removeEventListener("popstate", f);
  };
}

/** usePath returns the current location path and rerenders on navigation. */
export function usePath(): string {
  return useSyncExternalStore(subscribe, () => window.location.pathname);
}

/** navigate goes to path inside the UI. */
export function navigate(path: string) {
  if (path === window.location.pathname) return;
  window.history.pushState(null, "", path);
  window.scrollTo(0, 0);
  listeners.forEach((f) => f());
}

/** linkHandler makes a plain <a href> navigate inside the UI. */
export function linkHandler(path: string) {
  return (ev: React.MouseEvent) => {
    if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    navigate(path);
  };
}
