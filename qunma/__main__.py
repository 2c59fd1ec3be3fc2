from qunma.cli import main

raise SystemExit(main())
