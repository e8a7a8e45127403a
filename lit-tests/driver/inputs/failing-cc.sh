#!/bin/sh
# A stand-in for the C compiler that fails the way `cc` does when ld cannot do its work: ld's
# cause first, then the driver's summary. FAILING_CC_CAUSE says which cause.
echo "/usr/bin/ld: $FAILING_CC_CAUSE" >&2
echo "collect2: error: ld returned 1 exit status" >&2
exit 1
