/** Exit code of a command line that cannot be run as given (the shells' and BSD sysexits' usage error). */
export const USAGE_ERROR = 2;
