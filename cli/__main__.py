from scdd.cli.main import main

main()
