from dprime.cli import main

raise SystemExit(main())
