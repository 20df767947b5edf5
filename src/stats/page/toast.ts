// One message at a time in the corner, for 3.5 s; red when something failed.

let timer: ReturnType<typeof setTimeout> | undefined;

export function toast(message: string, bad = false): void {
  const el = document.getElementById('toast');
  if (el === null) return;
  el.textContent = message;
  el.className = bad ? 'show err' : 'show';
  clearTimeout(timer);
  timer = setTimeout(() => {
    el.className = '';
  }, 3500);
}
