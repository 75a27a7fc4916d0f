from streamkit.cli.main import main

main()
