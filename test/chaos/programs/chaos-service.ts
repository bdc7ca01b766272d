/**
 * A service for the chaos section: a process with a child (`sleep`), so that stopping or
 * restarting it must take a tree down. Prints `ready <pid> <child pid>` once both run, then
 * lives until signalled.
 */
import { spawn } from 'node:child_process';

const child = spawn('sleep', ['3600'], { stdio: 'ignore' });
child.once('spawn', () => process.stdout.write(`ready ${process.pid} ${child.pid}\n`));
setInterval(() => {}, 1 << 30);
