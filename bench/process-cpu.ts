/**
 * CPU time of processes, read from /proc (Linux): what a benchmark charges to the server and to
 * PostgreSQL per event, whatever else the machine does meanwhile.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** utime + stime (+ cutime + cstime, the reaped children's) of a process, in seconds; 0 once it is gone. */
export function processCpuSeconds(pid: number, withReapedChildren: boolean): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0;
  }
  // The fields after the command name, which may hold spaces, start after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = [11, 12, ...(withReapedChildren ? [13, 14] : [])].reduce(
    (sum, i) => sum + Number(fields[i]),
    0,
  );
  return ticks / 100;
}

export function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((child) => {
      try {
        const stat = readFileSync(`/proc/${child}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    });
}
